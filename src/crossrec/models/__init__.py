"""The recommender: fusion modules, towers, graph propagation, losses, Lightning module and data
module, training entry point and the trained-model bundle.

Submodules are imported explicitly (``crossrec.models.training``, ``crossrec.models.config``)
so that importing this package stays cheap for the Kedro registry.
"""
