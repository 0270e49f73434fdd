//! The reads behind the held-batch checks of [`crate::loader::DenseBatches`]:
//! a tensor's `TensorImpl` use count, its version counter, `requires_grad`,
//! `grad`, backward hooks and instance attributes, per batch.
//!
//! Through Python each is an attribute lookup or a bound-method call (about
//! as costly as the rest of a batch's hand-off together), so the probe calls
//! torch's own C entry points for them directly: the getters of
//! `torch._C.TensorBase`'s `tp_getset` and the function of its `_use_count`
//! method, found once. Each is used only where it is provably what Python
//! would run: the name must resolve on `torch.Tensor` to the descriptor the
//! entry comes from, and the object must be exactly a `torch.Tensor` (an
//! object whose class was reassigned goes through Python). Anything not found
//! (another torch) falls back to the Python lookup, with the same results.

use std::ffi::{c_int, c_void, CStr};

use pyo3::exceptions::PyRuntimeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyType};

/// One attribute: torch's getter and its closure (as an address, so that the
/// probe is `Send`), else the name for a Python lookup.
struct Attr {
    name: Py<PyString>,
    direct: Option<(ffi::getter, usize)>,
}

/// See the [module docs](self).
pub(crate) struct TensorProbe {
    /// `torch.Tensor`: the exact type the direct reads accept.
    tensor: Py<PyType>,
    use_count_name: Py<PyString>,
    /// `TensorBase._use_count`'s function (`METH_NOARGS`).
    use_count: Option<ffi::PyCFunction>,
    version: Attr,
    requires_grad: Attr,
    grad: Attr,
    backward_hooks: Attr,
}

impl TensorProbe {
    /// Finds the entry points in the imported `torch`.
    pub(crate) fn new(py: Python<'_>) -> PyResult<Self> {
        let torch = py.import("torch")?;
        let tensor = torch.getattr("Tensor")?.cast_into::<PyType>()?;
        let base = torch
            .getattr("_C")?
            .getattr("TensorBase")?
            .cast_into::<PyType>()?;
        let attr = |name: &'static CStr| -> PyResult<Attr> {
            let text = name
                .to_str()
                .map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
            let direct = match (tensor.getattr(text), base.getattr(text)) {
                // The descriptor `torch.Tensor` resolves the name to is
                // TensorBase's own, so its getter is what Python would call.
                (Ok(on_tensor), Ok(on_base)) if on_tensor.is(&on_base) => getset(&base, name),
                _ => None,
            };
            Ok(Attr {
                name: PyString::intern(py, text).unbind(),
                direct,
            })
        };
        let use_count = tensor
            .call0()
            .and_then(|t| t.getattr("_use_count"))
            .ok()
            .and_then(|bound| {
                let resolves = tensor
                    .getattr("_use_count")
                    .and_then(|on_tensor| Ok(on_tensor.is(&base.getattr("_use_count")?)))
                    .unwrap_or(false);
                resolves.then(|| noargs_function(&bound)).flatten()
            });
        Ok(TensorProbe {
            use_count_name: PyString::intern(py, "_use_count").unbind(),
            use_count,
            version: attr(c"_version")?,
            requires_grad: attr(c"requires_grad")?,
            grad: attr(c"grad")?,
            backward_hooks: attr(c"_backward_hooks")?,
            tensor: tensor.unbind(),
        })
    }

    /// `obj` is exactly a `torch.Tensor`.
    pub(crate) fn is_tensor(&self, obj: &Bound<'_, PyAny>) -> bool {
        obj.get_type().is(self.tensor.bind(obj.py()))
    }

    /// `obj._use_count()`: references to its `TensorImpl` (autograd's saved
    /// tensors and views' bases among them).
    pub(crate) fn use_count(&self, obj: &Bound<'_, PyAny>) -> PyResult<i64> {
        match self.use_count {
            Some(f) if self.is_tensor(obj) => {
                // SAFETY: `f` is the `METH_NOARGS` function of the method
                // `torch.Tensor` resolves `_use_count` to; such a function
                // takes the instance and a null argument, and `obj` is a
                // live `torch.Tensor` (the GIL is held: `obj` is bound).
                let got = unsafe { f(obj.as_ptr(), std::ptr::null_mut()) };
                owned(obj.py(), got)?.extract()
            }
            _ => obj
                .call_method0(self.use_count_name.bind(obj.py()))?
                .extract(),
        }
    }

    /// `obj` is as the loader made it: a `torch.Tensor` at `version`, with
    /// no `requires_grad`, `grad`, backward hooks or instance attributes.
    pub(crate) fn pristine(&self, obj: &Bound<'_, PyAny>, version: i64) -> PyResult<bool> {
        if !self.is_tensor(obj) {
            return Ok(false);
        }
        Ok(self.get(obj, &self.version)?.extract::<i64>()? == version
            && !self.get(obj, &self.requires_grad)?.is_truthy()?
            && self.get(obj, &self.grad)?.is_none()
            && self.get(obj, &self.backward_hooks)?.is_none()
            && !has_attributes(obj)?)
    }

    /// `obj._version`.
    pub(crate) fn version(&self, obj: &Bound<'_, PyAny>) -> PyResult<i64> {
        self.get(obj, &self.version)?.extract()
    }

    fn get<'py>(&self, obj: &Bound<'py, PyAny>, attr: &Attr) -> PyResult<Bound<'py, PyAny>> {
        match attr.direct {
            Some((get, closure)) if self.is_tensor(obj) => {
                // SAFETY: `get` is the getter of the descriptor that
                // `torch.Tensor` resolves this name to, called as that
                // descriptor calls it: the instance (a live `torch.Tensor`,
                // the GIL held) and the closure of its `PyGetSetDef`.
                let got = unsafe { get(obj.as_ptr(), closure as *mut c_void) };
                owned(obj.py(), got)
            }
            _ => obj.getattr(attr.name.bind(obj.py())),
        }
    }
}

/// `obj` has instance attributes (its `__dict__` is not empty).
fn has_attributes(obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    // SAFETY: `obj` is a live object and the GIL is held. `PyObject_GenericGetDict`
    // is what `__dict__` runs for a class that does not define its own
    // (`torch.Tensor` does not); it returns a new reference or sets an error.
    let dict = owned(obj.py(), unsafe {
        ffi::PyObject_GenericGetDict(obj.as_ptr(), std::ptr::null_mut())
    });
    match dict {
        Ok(dict) => Ok(dict.len()? > 0),
        Err(_) => obj.getattr(intern_dict(obj.py()))?.is_truthy(),
    }
}

fn intern_dict(py: Python<'_>) -> &Bound<'_, PyString> {
    pyo3::intern!(py, "__dict__")
}

/// A new reference returned by the C API, or the error it set.
fn owned(py: Python<'_>, ptr: *mut ffi::PyObject) -> PyResult<Bound<'_, PyAny>> {
    // SAFETY: `ptr` is what a C-API call just returned: a new reference, or
    // null with an exception set.
    unsafe { Bound::from_owned_ptr_or_err(py, ptr) }
}

/// The getter of `base`'s `tp_getset` entry `name`.
fn getset(base: &Bound<'_, PyType>, name: &CStr) -> Option<(ffi::getter, usize)> {
    // SAFETY: `PyType_GetSlot` accepts static types since Python 3.10 (the
    // oldest this extension loads in); `Py_tp_getset` gives the type's
    // `PyGetSetDef` array, ended by an entry with a null name and alive as
    // long as the type (which `base` holds). Only entries with a name are read.
    unsafe {
        let mut def =
            ffi::PyType_GetSlot(base.as_type_ptr(), ffi::Py_tp_getset) as *const ffi::PyGetSetDef;
        if def.is_null() {
            let _ = PyErr::take(base.py());
            return None;
        }
        while !(*def).name.is_null() {
            if CStr::from_ptr((*def).name) == name {
                return (*def).get.map(|get| (get, (*def).closure as usize));
            }
            def = def.add(1);
        }
    }
    None
}

/// The C function of a bound builtin method that takes no arguments.
fn noargs_function(bound: &Bound<'_, PyAny>) -> Option<ffi::PyCFunction> {
    // SAFETY: `bound` is live and the GIL is held; the flags and function of
    // a builtin method are read only after the check that it is one.
    unsafe {
        if ffi::PyCFunction_Check(bound.as_ptr()) == 0 {
            return None;
        }
        let calling: c_int = ffi::METH_VARARGS
            | ffi::METH_KEYWORDS
            | ffi::METH_NOARGS
            | ffi::METH_O
            | ffi::METH_FASTCALL
            | ffi::METH_CLASS
            | ffi::METH_STATIC;
        if ffi::PyCFunction_GetFlags(bound.as_ptr()) & calling != ffi::METH_NOARGS {
            return None;
        }
        ffi::PyCFunction_GetFunction(bound.as_ptr())
    }
}
