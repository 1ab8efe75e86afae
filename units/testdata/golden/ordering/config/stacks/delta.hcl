stack "delta" {
  jobs = ["delta"]
}
