"""Built-in image and volume loaders (registered by ``liverseg_studio.loaders.plugin``)."""
