stack "alpha" {
  jobs = ["alpha"]
}
