"""API views: one class per write (nested Input/Output serializers, one service call) and
read-only list views with FilterSets."""
