stack "inherits" { jobs = ["inherits"] }
