"""The sandbox: the controller that starts everything the spec describes, its backends, run
directory, readiness checks and control socket."""
