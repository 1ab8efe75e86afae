stack "template" { jobs = ["ignored"] }
