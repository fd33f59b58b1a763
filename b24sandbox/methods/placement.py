"""REST methods: placement.bind / unbind / get."""
