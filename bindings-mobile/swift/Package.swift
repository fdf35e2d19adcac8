// swift-tools-version:5.9
// The Swift package of the Pitchey real-time SDK. Build the binary target first, on a Mac:
// bindings-mobile/scripts/build-xcframework.sh (it writes PitcheyRealtimeFFI.xcframework and
// Sources/PitcheyRealtime/PitcheyRealtime.swift next to this file).
import PackageDescription

let package = Package(
    name: "PitcheyRealtime",
    platforms: [.iOS(.v13), .macOS(.v10_15)],
    products: [
        .library(name: "PitcheyRealtime", targets: ["PitcheyRealtime"]),
    ],
    targets: [
        // The Rust static libraries, the C header and the modulemap uniffi generates.
        .binaryTarget(name: "PitcheyRealtimeFFI", path: "PitcheyRealtimeFFI.xcframework"),
        // The generated Swift API (async/await functions, the error enum, the protocols).
        .target(
            name: "PitcheyRealtime",
            dependencies: ["PitcheyRealtimeFFI"],
            path: "Sources/PitcheyRealtime"
        ),
    ]
)
