stack "other" {
  jobs = ["other"]
  on_demand {
    socket = "other.socket"
  }
}
