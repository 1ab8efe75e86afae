notify {
  on_failure = ["/usr/bin/ntfy", "publish", "backups", "backup failed"]
}
healthcheck { url = "https://hc.example/ping/0000" }
