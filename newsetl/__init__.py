"""newsetl package."""
