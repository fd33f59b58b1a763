"""REST methods: event.bind / unbind / get."""
