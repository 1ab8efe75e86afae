# A config.hcl and no stacks: nothing is generated.
defaults {
  schedule = "daily"
}
