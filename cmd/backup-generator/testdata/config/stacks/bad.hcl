stack "bad" {
  jobs           = ["bad"]
  restore_policy = "sometimes"
}
