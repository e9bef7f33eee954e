"""The web app (Litestar): exports, the live event relay, presence and health (DESIGN §7)."""
