//! Matching allocates nothing: a counting global allocator around lookups and the
//! per-subscriber fold, once their buffers have grown. (One test in this binary, so no other
//! thread allocates while it counts.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use mqtt_session::topic_tree::{Combine, Match, PerSubscriber, TopicTree};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(Default)]
struct Delivery {
    qos: u8,
    ids: Vec<u32>,
}

impl Combine<(u8, u32)> for Delivery {
    fn start(&mut self, (qos, id): &(u8, u32)) {
        self.qos = *qos;
        self.ids.clear();
        self.ids.push(*id);
    }
    fn add(&mut self, (qos, id): &(u8, u32)) {
        self.qos = self.qos.max(*qos);
        self.ids.push(*id);
    }
}

#[test]
fn lookups_and_the_fold_allocate_nothing_once_warm() {
    let mut t: TopicTree<u32, (u8, u32)> = TopicTree::new();
    for s in 0..20u32 {
        for d in 0..50u32 {
            t.insert(&format!("site/{s}/device/{d}/#"), s * 100 + d, (1, 1))
                .unwrap();
        }
        t.insert(&format!("site/{s}/+/+/temp"), 7, (2, 2)).unwrap();
    }
    for k in 0..100 {
        t.insert("site/+/device/+/temp", k, (0, 3)).unwrap();
        t.insert("#", k, (1, 4)).unwrap();
    }
    t.insert("$share/g/site/#", 1, (0, 5)).unwrap();
    // 40 levels deep, so the walk's pending branches spill.
    let deep = vec!["+"; 40].join("/");
    t.insert(&deep, 1, (0, 6)).unwrap();
    let deep_topic = vec!["x"; 40].join("/");

    let topics = [
        "site/3/device/17/temp",
        "site/9/device/49/x/y",
        "other",
        "$SYS/x",
    ];
    let mut out = PerSubscriber::<u32, Delivery>::new();
    let warm = |out: &mut PerSubscriber<u32, Delivery>| {
        let mut n = 0usize;
        for topic in topics {
            t.matches(topic, |m| match m {
                Match::Subscription(..) => n += 1,
                Match::Shared(g) => n += g.len(),
            });
            t.matches_per_subscriber(topic, out, |g| n += g.pick(|_, _| true).is_some() as usize);
        }
        n
    };
    let first = warm(&mut out);
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let again = warm(&mut out);
    let after = ALLOCATIONS.load(Ordering::Relaxed);
    assert_eq!(first, again);
    assert!(first > 200);
    assert_eq!(after - before, 0, "allocations during warm lookups");

    // The deep walk spills its pending branches to the heap: the one allowed exception.
    let mut n = 0;
    t.matches(&deep_topic, |_| n += 1);
    assert_eq!(n, 101);
}
