//! The values of a repeated property: [`List`] (User Properties) and [`SubscriptionIds`].
//!
//! A broker hands one message to many subscribers, each copy with its own Subscription
//! Identifiers and the publisher's User Properties. So the copies share the User
//! Properties (copying a `List` counts a reference), and one or two Subscription
//! Identifiers, what a delivery carries almost always, need no allocation.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::ops::Deref;

use crate::SubscriptionId;

/// The values of a repeated property, in order, shared by the copies of a packet: cloning
/// a list counts a reference, and changing one copies it first (copy on write). An empty
/// list allocates nothing.
///
/// It reads as a slice (`list.iter()`, `list.len()`, `list[0]`), is built with
/// [`push`](Self::push), from a `Vec` or from an iterator, and compares equal to a slice,
/// array or `Vec` of the same values.
///
/// ```
/// use mqtt_codec::{List, MqttString};
///
/// let mut list: List<(MqttString, MqttString)> = List::new();
/// list.push((MqttString::new("trace")?, MqttString::new("4bf92f")?));
/// let copy = list.clone(); // shares the values
/// assert_eq!(copy.len(), 1);
/// assert_eq!(copy[0].0.as_str(), "trace");
/// # Ok::<(), mqtt_codec::StringError>(())
/// ```
pub struct List<T>(Option<Arc<[T]>>);

impl<T> List<T> {
    /// No values.
    pub const fn new() -> Self {
        Self(None)
    }

    /// The values.
    #[inline]
    pub fn as_slice(&self) -> &[T] {
        self.0.as_deref().unwrap_or(&[])
    }

    /// Removes every value (other copies keep theirs).
    pub fn clear(&mut self) {
        self.0 = None;
    }
}

impl<T: Clone> List<T> {
    /// Adds `value` at the end. The values are copied into a new allocation: build a long
    /// list from a `Vec` or an iterator instead.
    pub fn push(&mut self, value: T) {
        let mut v = Vec::with_capacity(self.len() + 1);
        v.extend_from_slice(self.as_slice());
        v.push(value);
        self.0 = Some(v.into());
    }

    /// The values, moved into a `Vec` (copied: they may be shared).
    pub fn to_vec(&self) -> Vec<T> {
        self.as_slice().to_vec()
    }
}

impl<T> Clone for List<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> Default for List<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Deref for List<T> {
    type Target = [T];

    #[inline]
    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

impl<T> From<Vec<T>> for List<T> {
    fn from(v: Vec<T>) -> Self {
        if v.is_empty() {
            Self(None)
        } else {
            Self(Some(v.into()))
        }
    }
}

impl<T: Clone> From<&[T]> for List<T> {
    fn from(v: &[T]) -> Self {
        if v.is_empty() {
            Self(None)
        } else {
            Self(Some(v.into()))
        }
    }
}

impl<T, const N: usize> From<[T; N]> for List<T> {
    fn from(v: [T; N]) -> Self {
        if N == 0 {
            Self(None)
        } else {
            Self(Some(Arc::from_iter(v)))
        }
    }
}

impl<T> FromIterator<T> for List<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        Self::from(iter.into_iter().collect::<Vec<T>>())
    }
}

impl<'a, T> IntoIterator for &'a List<T> {
    type Item = &'a T;
    type IntoIter = core::slice::Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}

impl<T: PartialEq> PartialEq for List<T> {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<T: Eq> Eq for List<T> {}

impl<T: PartialEq> PartialEq<[T]> for List<T> {
    fn eq(&self, other: &[T]) -> bool {
        self.as_slice() == other
    }
}

impl<T: PartialEq> PartialEq<Vec<T>> for List<T> {
    fn eq(&self, other: &Vec<T>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<T: PartialEq, const N: usize> PartialEq<[T; N]> for List<T> {
    fn eq(&self, other: &[T; N]) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<T: fmt::Debug> fmt::Debug for List<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_slice().fmt(f)
    }
}

#[cfg(feature = "serde")]
impl<T: serde::Serialize> serde::Serialize for List<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.as_slice())
    }
}

/// The Subscription Identifiers of a PUBLISH, in order. Up to two are held inline, so that
/// a broker sets a delivery's identifiers without allocating; more go into a shared
/// [`List`]. It reads as a slice, like a `List`.
///
/// ```
/// use mqtt_codec::{SubscriptionId, SubscriptionIds};
///
/// let mut ids = SubscriptionIds::new();
/// ids.push(SubscriptionId::new(7).unwrap());
/// assert_eq!(ids.iter().map(|i| i.get()).collect::<Vec<_>>(), [7]);
/// ```
#[derive(Clone)]
pub struct SubscriptionIds(Ids);

#[derive(Clone)]
enum Ids {
    /// `len` (0 to 2) identifiers; the slots past `len` hold [`FILLER`].
    Inline {
        len: u8,
        ids: [SubscriptionId; 2],
    },
    Shared(List<SubscriptionId>),
}

/// What an unused inline slot holds.
const FILLER: SubscriptionId = SubscriptionId::MIN;

impl SubscriptionIds {
    /// No identifiers.
    pub const fn new() -> Self {
        Self(Ids::Inline {
            len: 0,
            ids: [FILLER; 2],
        })
    }

    /// The identifiers.
    #[inline]
    pub fn as_slice(&self) -> &[SubscriptionId] {
        match &self.0 {
            Ids::Inline { len, ids } => &ids[..usize::from(*len)],
            Ids::Shared(list) => list.as_slice(),
        }
    }

    /// Adds `id` at the end.
    pub fn push(&mut self, id: SubscriptionId) {
        match &mut self.0 {
            Ids::Inline { len, ids } if usize::from(*len) < ids.len() => {
                ids[usize::from(*len)] = id;
                *len += 1;
            }
            Ids::Inline { ids, .. } => {
                let mut v = Vec::with_capacity(ids.len() + 1);
                v.extend_from_slice(ids);
                v.push(id);
                self.0 = Ids::Shared(v.into());
            }
            Ids::Shared(list) => list.push(id),
        }
    }

    /// Removes every identifier.
    pub fn clear(&mut self) {
        *self = Self::new();
    }
}

impl Default for SubscriptionIds {
    fn default() -> Self {
        Self::new()
    }
}

impl Deref for SubscriptionIds {
    type Target = [SubscriptionId];

    #[inline]
    fn deref(&self) -> &[SubscriptionId] {
        self.as_slice()
    }
}

impl FromIterator<SubscriptionId> for SubscriptionIds {
    fn from_iter<I: IntoIterator<Item = SubscriptionId>>(iter: I) -> Self {
        let mut ids = Self::new();
        for id in iter {
            ids.push(id);
        }
        ids
    }
}

impl From<Vec<SubscriptionId>> for SubscriptionIds {
    fn from(v: Vec<SubscriptionId>) -> Self {
        Self::from(v.as_slice())
    }
}

impl From<&[SubscriptionId]> for SubscriptionIds {
    #[inline]
    fn from(v: &[SubscriptionId]) -> Self {
        match *v {
            [] => Self::new(),
            [a] => Self(Ids::Inline {
                len: 1,
                ids: [a, FILLER],
            }),
            [a, b] => Self(Ids::Inline {
                len: 2,
                ids: [a, b],
            }),
            _ => Self(Ids::Shared(v.into())),
        }
    }
}

impl<const N: usize> From<[SubscriptionId; N]> for SubscriptionIds {
    fn from(v: [SubscriptionId; N]) -> Self {
        Self::from(v.as_slice())
    }
}

impl<'a> IntoIterator for &'a SubscriptionIds {
    type Item = &'a SubscriptionId;
    type IntoIter = core::slice::Iter<'a, SubscriptionId>;

    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}

impl PartialEq for SubscriptionIds {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for SubscriptionIds {}

impl PartialEq<[SubscriptionId]> for SubscriptionIds {
    fn eq(&self, other: &[SubscriptionId]) -> bool {
        self.as_slice() == other
    }
}

impl PartialEq<Vec<SubscriptionId>> for SubscriptionIds {
    fn eq(&self, other: &Vec<SubscriptionId>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<const N: usize> PartialEq<[SubscriptionId; N]> for SubscriptionIds {
    fn eq(&self, other: &[SubscriptionId; N]) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl fmt::Debug for SubscriptionIds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_slice().fmt(f)
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for SubscriptionIds {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.as_slice())
    }
}

/// A repeated property's container, as the property structs decode into it.
pub(crate) trait Repeated: Default {
    type Item;
    /// Where values collect while a packet is decoded.
    type Builder: Default;
    /// No values, for the structs' static empty instance.
    const EMPTY: Self;
    fn add(builder: &mut Self::Builder, value: Self::Item);
    fn finish(builder: Self::Builder) -> Self;
}

/// A [`List`] being decoded: its first values on the stack, so that the list is allocated
/// once, at its size.
pub(crate) struct Collect<T> {
    first: [Option<T>; 4],
    n: usize,
    rest: Vec<T>,
}

impl<T> Default for Collect<T> {
    fn default() -> Self {
        Self {
            first: Default::default(),
            n: 0,
            rest: Vec::new(),
        }
    }
}

impl<T: Default> Repeated for List<T> {
    type Item = T;
    type Builder = Collect<T>;
    const EMPTY: Self = Self::new();
    fn add(b: &mut Collect<T>, value: T) {
        match b.first.get_mut(b.n) {
            Some(slot) => {
                *slot = Some(value);
                b.n += 1;
            }
            None => b.rest.push(value),
        }
    }
    fn finish(b: Collect<T>) -> Self {
        if b.n == 0 {
            return Self(None);
        }
        if b.rest.is_empty() {
            // An iterator of known length: collected into one allocation. (Every slot
            // before `n` is filled, so the default is never taken.)
            let first = b.first.into_iter().take(b.n);
            return Self(Some(first.map(Option::unwrap_or_default).collect()));
        }
        let mut all = Vec::with_capacity(b.n + b.rest.len());
        all.extend(b.first.into_iter().flatten());
        all.extend(b.rest);
        all.into()
    }
}

impl Repeated for SubscriptionIds {
    type Item = SubscriptionId;
    type Builder = Self;
    const EMPTY: Self = Self::new();
    fn add(builder: &mut Self, value: SubscriptionId) {
        builder.push(value);
    }
    fn finish(builder: Self) -> Self {
        builder
    }
}

/// For `skip_serializing_if`: whether a repeated property has no value.
#[cfg(feature = "serde")]
pub(crate) fn no_values<L: Deref<Target = [T]>, T>(l: &L) -> bool {
    l.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn id(n: u32) -> SubscriptionId {
        SubscriptionId::new(n).unwrap()
    }

    #[test]
    fn subscription_ids_keep_their_order_inline_and_past_it() {
        let mut ids = SubscriptionIds::new();
        assert!(ids.is_empty());
        for n in 1..=5 {
            ids.push(id(n));
            let want: Vec<SubscriptionId> = (1..=n).map(id).collect();
            assert_eq!(ids, want);
            assert_eq!(SubscriptionIds::from(want.clone()), ids);
        }
        ids.clear();
        assert_eq!(ids, SubscriptionIds::new());
        // The filler in unused slots is not a value.
        assert_ne!(SubscriptionIds::from([FILLER]), SubscriptionIds::new());
    }

    #[test]
    fn a_decoded_list_keeps_its_order_past_the_stack() {
        for n in 0..10u32 {
            let mut b = Collect::default();
            for v in 0..n {
                <List<u32> as Repeated>::add(&mut b, v);
            }
            let list = <List<u32> as Repeated>::finish(b);
            assert_eq!(list, (0..n).collect::<Vec<u32>>());
        }
    }

    #[test]
    fn a_changed_copy_of_a_list_leaves_the_original_alone() {
        let mut a: List<u32> = vec![1, 2].into();
        let b = a.clone();
        a.push(3);
        assert_eq!(a, [1, 2, 3]);
        assert_eq!(b, [1, 2]);
        a.clear();
        assert!(a.is_empty());
        assert_eq!(a, List::default());
        assert_eq!(List::<u32>::from(Vec::new()), List::new());
    }
}
