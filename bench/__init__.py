"""Performance benchmarks of the sandbox portal and the app, measured over real HTTP."""
