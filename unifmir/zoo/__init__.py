"""The model suite: recipes in ``packaging/`` -> bundles in ``zoo_models/``, and the official release."""
