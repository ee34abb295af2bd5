"""The probes: one module per family of what they test (`tls`, `token`, `authz`, `bypass`,
`datastore`), each listing its `Probe`s in ``PROBES``; `registry` collects them by catalogue id.
Probes drive a sandbox only through its `trustproof.view.SandboxView`."""
