"""simvp_model package."""
