stack "own" {
  jobs = ["own"]
  notify {
    on_failure = ["mail", "-s", "failed", "me@example.org"]
    on_success = ["mail", "-s", "ok", "me@example.org"]
  }
}
