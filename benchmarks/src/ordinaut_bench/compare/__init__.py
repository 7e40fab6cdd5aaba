"""`ordinaut bench compare`: Ordinaut, Procrastinate and Celery side by side (driver.py)."""
