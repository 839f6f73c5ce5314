// GoalTree: adaptation goals in their partial order (papers/mistify.md §4.3, Fig. 4). Goal i
// precedes goal j when j is at least as demanding on every constraint and more on one; each
// goal hangs under one immediate predecessor, so every root-to-leaf path can be adapted in
// one pass from the least to the most demanding goal. Pure function.
#pragma once

#include <vector>

namespace edgefleet {

struct GoalTree {
  std::vector<int> parent;                  // per goal: its predecessor, or -1 (adapted from the base model)
  std::vector<std::vector<int>> children;   // per goal, in the order they are adapted
  std::vector<int> roots;                   // goals with no predecessor
  std::vector<int> order;                   // every goal, parents before children (depth first)
};

// `demands[i]` is goal i's demand per constraint, larger = more demanding (e.g. the negated
// budget; -infinity where the goal does not constrain). All rows have the same length.
// Identical rows are ordered by index. O(n log n + n * k) typical, O(n^2) worst case.
GoalTree build_goal_tree(const std::vector<std::vector<double>>& demands);

// True when `a` precedes or equals `b`: no constraint of `a` is more demanding.
bool at_most_as_demanding(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace edgefleet
