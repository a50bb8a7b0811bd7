"""The views: each one pure step ``apply(state, event, config) -> (changes, outputs)``
(``streams.views.step``), registered once in ``streams.views.registry``."""
