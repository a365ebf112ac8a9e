//! The rollout engine: a pure planner from (desired, observed) state to actions, and an executor.
