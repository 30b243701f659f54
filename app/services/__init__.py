"""The domain layer: registry rules, once. Resources call these; these never see HTTP."""
