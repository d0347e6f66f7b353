"""Lightning training modules and data modules per task. Arrives with the learned thread-counter
issue; inference code never imports this package."""
