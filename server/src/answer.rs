//! The boxed answer futures: the app's, and those of the gRPC path's layers. A leaf
//! module, so that no layer imports the router that mounts it.

use std::{convert::Infallible, future::Future, pin::Pin};

use http::Response;

/// The app's answer to any request (a plain HTTP body).
pub type BoxFuture =
    Pin<Box<dyn Future<Output = Result<Response<axum::body::Body>, Infallible>> + Send>>;

/// A gRPC layer's answer (tonic's body, as tonic-web hands it on).
pub type GrpcFuture =
    Pin<Box<dyn Future<Output = Result<Response<tonic::body::Body>, Infallible>> + Send>>;
