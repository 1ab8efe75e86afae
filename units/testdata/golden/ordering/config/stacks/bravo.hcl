stack "bravo" {
  jobs = ["bravo"]
}
