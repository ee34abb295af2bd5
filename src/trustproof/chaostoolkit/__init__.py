"""trustproof's trust faults and matrix checks for Chaos Toolkit (``chaostoolkit``).

Activities are plain functions of two modules, named in an experiment's ``provider``:

* `trustproof.chaostoolkit.probes` — ``matrix_holds`` (a sample of the access matrix holds:
  allowed cells allowed, refused ones refused), ``last_experiment_passed``;
* `trustproof.chaostoolkit.actions` — faults that stay in force until their rollback
  (``token_service_down`` / ``token_service_restore``, ``skew_gateway_clock`` /
  ``restore_gateway_clock``, ``audit_sink_down`` / ``audit_sink_restore``), one-way faults
  (``compromise_signing_key``, undone for service-to-service calls by ``renew_egress_tokens``),
  ``run_experiment`` (a whole trustproof experiment with its own steady state and rollback) and
  ``stop_sandbox``.

Every activity takes the spec's path (``spec``). The first one starts the sandbox of that spec
in this process, on an event loop of its own (`trustproof.chaostoolkit.session`); it runs until
``stop_sandbox`` (put it last among the rollbacks) or the process ends. Everything goes through
the sandbox's `SandboxView`, as trustproof's own experiments do.

    {"type": "probe", "name": "matrix-holds", "tolerance": true,
     "provider": {"type": "python", "module": "trustproof.chaostoolkit.probes",
                  "func": "matrix_holds", "arguments": {"spec": "trustproof.yaml"}}}
"""
