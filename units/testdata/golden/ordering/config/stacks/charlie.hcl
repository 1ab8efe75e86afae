stack "charlie" {
  jobs     = ["charlie"]
  schedule = ""   # no timer, although defaults has a schedule
}
