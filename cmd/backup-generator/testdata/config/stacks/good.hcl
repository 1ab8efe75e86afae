stack "good" {
  jobs     = ["good"]
  schedule = "daily"
  hook "pre_stop" {
    command = ["/usr/bin/logger", "100%", "$HOME"]
  }
}
