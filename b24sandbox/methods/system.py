"""REST methods: app.info, profile, user.*."""
