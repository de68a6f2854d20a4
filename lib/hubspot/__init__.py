"""HubSpot CRM: the client (client.py). Importing the package imports nothing heavy."""
