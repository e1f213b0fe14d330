"""The fit / evaluate / predict loop: data adapters, progress display and the `Trainer` mixin."""
