# Every hook kind, several of one kind, ignore_failure on and off, and
# arguments that need escaping.
stack "app" {
  jobs           = ["app", "app-db"]
  schedule       = "Mon..Fri *-*-* 01:15:00"
  restore_policy = "always"
  stop_timeout   = "90s"
  start_timeout  = "3m"
  wait_timeout   = "2h"
  require_paths  = ["/mnt/backup"]

  on_demand {
    socket  = "app-ondemand.socket"
    service = "app-ondemand.service"
  }

  hook "pre_stop" {
    command        = ["podman", "exec", "app", "occ", "maintenance:mode", "--on"]
    ignore_failure = true
  }
  hook "pre_stop" {
    command = ["/usr/local/bin/flush", "100%", "$HOME", "$${USER}", "a b", "it's \"quoted\"", "back\\slash", ";", "tab\there", "%i"]
  }
  hook "post_stop" {
    command = ["/usr/bin/logger", "post_stop"]
  }
  hook "pre_backup" {
    command        = ["/usr/bin/sync"]
    ignore_failure = true
  }
  hook "post_backup" {
    command = ["/usr/local/bin/notify", "result=$SERVICE_RESULT"]
  }
  hook "post_backup" {
    command        = ["/usr/local/bin/notify-2"]
    ignore_failure = true
  }
  hook "pre_start" {
    command = ["/usr/bin/logger", "pre_start"]
  }
  hook "post_start" {
    command        = ["podman", "exec", "app", "occ", "maintenance:mode", "--off"]
    ignore_failure = true
  }
  hook "verify" {
    command = ["/usr/bin/curl", "-fsS", "http://127.0.0.1:8080/status.php"]
  }
}
