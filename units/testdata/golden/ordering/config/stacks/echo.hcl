stack "echo" {
  jobs     = ["echo"]
  schedule = "weekly"
}
