# Template for a stack file. Copy it to ~/.config/backup-stack/stacks/<name>.hcl
# (files whose name starts with "_" are ignored) and keep only what you need.
# After editing, run `backup-stack validate` and `backup-stack reload`.
#
# One stack per file. The label is the stack name: letters, digits, "-" and
# "_" only; it becomes the instance of backup@<name>.service.
stack "example" {
  # The systemd user unit that runs the stack (podman-compose).
  # Default: "<name>-stack.service".
  unit = "example-stack.service"

  # Value of the io.podman.compose.project label of its containers; the
  # backup waits until none of them runs. Default: the stack name.
  project_label = "example"

  # Required. Duplicati backup names or IDs, run one after another in this
  # order. Each must be a manual-only job in Duplicati.
  jobs = ["example", "example-db"]

  # When to back up, in systemd calendar syntax (systemd.time(7), OnCalendar=).
  # Omitted: defaults.schedule from config.hcl, or no timer at all.
  # "" turns a default schedule off for this stack.
  schedule = "*-*-* 03:30:00"

  # What to start again afterwards:
  #   "previous" (default) only what was active when the backup began
  #   "always"   the stack unit and its on-demand socket, whatever they were
  restore_policy = "previous"

  # Bounds (Go durations: "90s", "2m", "1h30m"):
  stop_timeout  = "2m"  # for the stack to stop and its containers to go (default 2m)
  start_timeout = "5m"  # for the stack to start again (default 5m)
  wait_timeout  = "6h"  # for each Duplicati job (default: duplicati.wait_timeout)

  # Paths that must exist before anything is stopped (an autofs mount is
  # touched first). A missing path fails the backup with the stack still up.
  require_paths = ["/mnt/backup"]

  # A socket that starts the stack on demand. It is stopped with the stack
  # (so a request cannot start it mid-backup) and restored afterwards.
  on_demand {
    socket  = "example-ondemand.socket"
    service = "example-ondemand.service" # optional: the socket's own service
  }

  # Snapshot mode (at most one block): the stack is down only while its data
  # is frozen. Once it has stopped, each path is frozen at
  # <into>/<stack name>/<the path's base name> (made unique with -2, -3 ...),
  # the stack is started again (pre_start and post_start hooks run then), and
  # the jobs back up the snapshot, which is removed afterwards. Point the jobs'
  # sources at it as the Duplicati container sees it (README: Snapshot mode).
  # snapshot {
  #   paths   = ["~/podman-compose/example/data"]      # required, at least one: absolute or "~/"
  #   method  = "auto"  # "auto" (default: btrfs, else reflink, else refused) | "btrfs" | "reflink" | "copy"
  #   into    = "~/.local/share/backup-stack/snapshots" # default ($XDG_DATA_HOME/backup-stack/snapshots when set)
  #   timeout = "30m"   # bounds taking the snapshots; the stack is down meanwhile (default 30m)
  # }

  # Hooks: commands run at a point of the sequence, as a list (no shell).
  # Kinds, in the order they run:
  #   pre_stop     before the stack is stopped
  #   post_stop    after it stopped and its containers are gone
  #   pre_backup   right before the first job
  #   post_backup  after the jobs, whatever happened ($SERVICE_RESULT says how it went)
  #   pre_start    before the stack is started again
  #   post_start   after it started again
  #   verify       last, to check the stack works
  # (With a snapshot block, pre_start and post_start run right after
  # post_stop, before pre_backup.)
  # Several hooks of one kind run in file order. A failing hook fails the
  # backup unless ignore_failure = true; the stack is restored either way.
  # The program is an absolute path or a name found in systemd's search path.
  # Each hook is bounded by timeout (default "5m"): a hook that hangs is
  # killed with its children and counts as failed.
  hook "pre_stop" {
    command        = ["podman", "exec", "example-app", "example-cli", "flush"]
    ignore_failure = true
    timeout        = "1m"
  }
  hook "verify" {
    command = ["/usr/bin/curl", "-fsS", "http://127.0.0.1:8080/health"]
  }

  # Notifications and a health check for this stack only; each block replaces
  # the one in config.hcl (see config.hcl.example).
  # notify {
  #   on_failure = ["/bin/sh", "-c", "echo \"$BACKUP_LOG\" | mail -s \"backup of $BACKUP_STACK failed\" me@example.org"]
  # }
  # healthcheck { url = "https://hc-ping.com/<uuid-for-this-stack>" }
}
