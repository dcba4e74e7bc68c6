"""The lock plugin: RoadRunner's `lock.*` RPC, locks held in this fastrr instance."""
