stack "socket-only" {
  unit = "socket-only.service"
  jobs = ["so"]
  schedule = "daily"
  on_demand {
    socket = "socket-only.socket"
  }
}
