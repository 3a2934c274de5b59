"""One module per family. Each describes its variants as data and registers them with
:func:`keras_convnets.registry.variant`; the registry imports every module here on first use."""
