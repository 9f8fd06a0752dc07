//! The resolved dependency graph and the two walks `affected` needs: a target's dependency
//! closure, and the shortest chain from a changed package up to the target's package.
//!
//! Nodes are every package of the resolve, not only local ones: a local crate patched in with
//! `[patch]` can reach a binary through a registry crate, and the chain should say so.
//! Dev-dependency edges are kept apart because they never reach a bin; they reach only the
//! examples (and tests) of the package that declares them, so only a walk from an example's
//! package follows them, and only for the first hop.

use std::collections::{HashMap, VecDeque};

/// Which edges of the resolve we track; `Normal` covers normal and build dependencies alike,
/// since a changed build dependency reruns the build script and so rebuilds the package.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Edge {
    Normal,
    Dev,
}

#[derive(Clone, Debug, Default)]
pub(super) struct Graph {
    names: Vec<String>,
    deps: Vec<Vec<usize>>,
    dev_deps: Vec<Vec<usize>>,
    /// The node of each local package, by index into `Workspace::packages`.
    package_node: Vec<usize>,
    /// The local package of each node, if it is one.
    node_package: Vec<Option<usize>>,
}

impl Graph {
    /// A graph over the given package names, without edges yet.
    pub(super) fn new(names: Vec<String>) -> Graph {
        let n = names.len();
        Graph {
            names,
            deps: vec![Vec::new(); n],
            dev_deps: vec![Vec::new(); n],
            package_node: Vec::new(),
            node_package: vec![None; n],
        }
    }

    /// Declares that local package `package` (index into the workspace's packages) is `node`.
    /// Must be called for packages in index order.
    pub(super) fn set_package_node(&mut self, package: usize, node: usize) {
        debug_assert_eq!(package, self.package_node.len());
        self.package_node.push(node);
        self.node_package[node] = Some(package);
    }

    pub(super) fn add_edge(&mut self, from: usize, to: usize, edge: Edge) {
        let list = match edge {
            Edge::Normal => &mut self.deps[from],
            Edge::Dev => &mut self.dev_deps[from],
        };
        if !list.contains(&to) {
            list.push(to);
            // Sorted adjacency keeps breadth-first chains deterministic.
            list.sort_unstable();
        }
    }

    /// Everything the given local package's target is built from, with the way back.
    /// `with_dev` adds the package's own dev-dependencies (examples are built with them).
    pub(super) fn closure(&self, package: usize, with_dev: bool) -> Closure {
        let start = self.package_node[package];
        let mut parent = HashMap::from([(start, start)]);
        let mut queue = VecDeque::new();
        let first_hop = self.deps[start].iter().chain(if with_dev {
            &self.dev_deps[start][..]
        } else {
            &[]
        });
        for &dep in first_hop {
            if parent.insert(dep, start).is_none() {
                queue.push_back(dep);
            }
        }
        while let Some(node) = queue.pop_front() {
            for &dep in &self.deps[node] {
                if let std::collections::hash_map::Entry::Vacant(e) = parent.entry(dep) {
                    e.insert(node);
                    queue.push_back(dep);
                }
            }
        }
        Closure { start, parent }
    }

    /// The local packages (indices into `Workspace::packages`) inside a closure.
    pub(super) fn local_packages<'a>(
        &'a self,
        closure: &'a Closure,
    ) -> impl Iterator<Item = usize> + 'a {
        closure.parent.keys().filter_map(|&n| self.node_package[n])
    }

    /// Names from `package` up to the closure's start, e.g. `["core", "web", "api"]`; `None`
    /// when the start does not depend on `package`. Breadth-first order makes it a shortest one.
    pub(super) fn chain(&self, closure: &Closure, package: usize) -> Option<Vec<String>> {
        let mut node = self.package_node[package];
        let mut chain = vec![self.names[node].clone()];
        while node != closure.start {
            node = *closure.parent.get(&node)?;
            chain.push(self.names[node].clone());
        }
        Some(chain)
    }
}

/// The nodes reachable from a start node, each with the node that reached it first.
#[derive(Debug)]
pub(super) struct Closure {
    start: usize,
    parent: HashMap<usize, usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// api → web → core, api → core, worker -dev-> web, tool (a registry crate) → core.
    fn graph() -> Graph {
        let names = ["api", "core", "web", "worker", "tool"];
        let mut g = Graph::new(names.iter().map(|s| s.to_string()).collect());
        for i in 0..4 {
            g.set_package_node(i, i);
        }
        g.add_edge(0, 2, Edge::Normal);
        g.add_edge(2, 1, Edge::Normal);
        g.add_edge(0, 1, Edge::Normal);
        g.add_edge(3, 2, Edge::Dev);
        g.add_edge(3, 4, Edge::Normal);
        g.add_edge(4, 1, Edge::Normal);
        g
    }

    #[test]
    fn chains_are_shortest() {
        let g = graph();
        let c = g.closure(0, false);
        assert_eq!(g.chain(&c, 1).unwrap(), ["core", "api"]);
        assert_eq!(g.chain(&c, 2).unwrap(), ["web", "api"]);
        assert_eq!(g.chain(&c, 0).unwrap(), ["api"]);
        assert_eq!(g.chain(&c, 3), None);
    }

    #[test]
    fn dev_edges_only_on_request_and_through_registry_nodes() {
        let g = graph();
        let bin = g.closure(3, false);
        assert_eq!(g.chain(&bin, 2), None);
        assert_eq!(g.chain(&bin, 1).unwrap(), ["core", "tool", "worker"]);
        let example = g.closure(3, true);
        assert_eq!(g.chain(&example, 2).unwrap(), ["web", "worker"]);
        let mut local: Vec<usize> = g.local_packages(&example).collect();
        local.sort_unstable();
        assert_eq!(local, [1, 2, 3]);
    }
}
