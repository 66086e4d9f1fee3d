"""Migrations of the data-subject-rights tables (app ``kith_privacy_subjects``)."""
