"""Run orchestration: the flow (prepare, plan, process_batch, finalize), options, report, timing, alerts."""
