"""Services own the CRM's logic; HTTP and CLI are thin layers over them."""
