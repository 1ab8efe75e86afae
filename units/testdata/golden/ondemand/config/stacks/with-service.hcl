stack "with-service" {
  jobs = ["ws"]
  on_demand {
    socket  = "zoopa-ondemand@with-service.socket"
    service = "zoopa-ondemand@with-service.service"
  }
}
