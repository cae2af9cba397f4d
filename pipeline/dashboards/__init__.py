"""OpenSearch Dashboards: the saved objects analysts use (``objects``) and their import (``load``)."""
