"""The database: engine and migrations, the ORM models, the measurement settings' hash, and the store's CRUD."""
