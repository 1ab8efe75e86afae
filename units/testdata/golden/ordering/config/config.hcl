duplicati {
  run_timeout  = "30s"
  wait_timeout = "4h"
}
defaults {
  schedule = "*-*-* 03:30:00"
}
