"""Distillation: sampling configurations, labelling them with a teacher, training students."""
