#include "edgefleet/goal_tree.h"

#include <algorithm>
#include <numeric>

namespace edgefleet {

bool at_most_as_demanding(const std::vector<double>& a, const std::vector<double>& b) {
  for (std::size_t k = 0; k < a.size(); ++k) {
    if (a[k] > b[k]) return false;
  }
  return true;
}

GoalTree build_goal_tree(const std::vector<std::vector<double>>& demands) {
  const std::size_t n = demands.size();
  GoalTree tree;
  tree.parent.assign(n, -1);
  tree.children.resize(n);
  // Sorted lexicographically, a goal's predecessors all come before it. Scanning backwards
  // from a goal, the first predecessor found is a maximal one: any goal between it and this
  // one in the order that it precedes would be found first.
  std::vector<int> sorted(n);
  std::iota(sorted.begin(), sorted.end(), 0);
  std::stable_sort(sorted.begin(), sorted.end(), [&](int a, int b) { return demands[a] < demands[b]; });
  for (std::size_t s = 0; s < n; ++s) {
    const int goal = sorted[s];
    for (std::size_t t = s; t-- > 0;) {
      if (at_most_as_demanding(demands[sorted[t]], demands[goal])) {
        tree.parent[goal] = sorted[t];
        break;
      }
    }
  }
  for (int goal : sorted) {
    if (tree.parent[goal] < 0) {
      tree.roots.push_back(goal);
    } else {
      tree.children[tree.parent[goal]].push_back(goal);
    }
  }
  std::vector<int> stack(tree.roots.rbegin(), tree.roots.rend());
  while (!stack.empty()) {
    const int goal = stack.back();
    stack.pop_back();
    tree.order.push_back(goal);
    for (auto child = tree.children[goal].rbegin(); child != tree.children[goal].rend(); ++child) stack.push_back(*child);
  }
  return tree;
}

}  // namespace edgefleet
