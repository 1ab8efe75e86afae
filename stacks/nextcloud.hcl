# Nextcloud with its database: maintenance mode on before the stop, off
# after the start, as Nextcloud's backup documentation asks.
stack "nextcloud" {
  unit           = "nextcloud-stack.service"
  project_label  = "nextcloud"
  jobs           = ["nextcloud", "nextcloud-db"]
  schedule       = "*-*-* 03:30:00"
  restore_policy = "previous"
  stop_timeout   = "2m"
  start_timeout  = "5m"
  wait_timeout   = "6h"
  require_paths  = ["/mnt/backup"]

  on_demand {
    socket  = "zoopa-ondemand@nextcloud.socket"
    service = "zoopa-ondemand@nextcloud.service"
  }

  hook "pre_stop" {
    command        = ["podman", "exec", "-u", "www-data", "nextcloud-app",
                      "php", "occ", "maintenance:mode", "--on"]
    ignore_failure = true
  }
  hook "post_start" {
    command        = ["podman", "exec", "-u", "www-data", "nextcloud-app",
                      "php", "occ", "maintenance:mode", "--off"]
    ignore_failure = true
  }
}
